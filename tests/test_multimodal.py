"""course_utils.multimodal: one client interface; keyed backends never touch the network without a key."""

import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

from course_utils import multimodal


def _red_square():
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    image[2:6, 2:6] = (255, 0, 0)
    return image


def test_images_convert_from_arrays_tensors_and_pil():
    from_array = multimodal.to_pil(_red_square())
    from_tensor = multimodal.to_pil(torch.from_numpy(_red_square()).permute(2, 0, 1).float() / 255)
    assert from_array.size == (8, 8) and np.array_equal(np.asarray(from_array), np.asarray(from_tensor))
    assert multimodal.to_pil(Image.new("L", (4, 4))).mode == "RGB"
    assert multimodal.data_url(_red_square()).startswith("data:image/png;base64,")
    with pytest.raises(ValueError, match="expected an RGB image"):
        multimodal.to_pil(np.zeros((8, 8)))


def test_local_backend_runs_offline_and_compare_times_every_task():
    seen = []

    def answer(image, prompt):
        seen.append((image.size, prompt))
        return " a red square \n"

    local = multimodal.LocalBackend("tiny", answer)
    answers, skipped = multimodal.compare([local], [("caption", _red_square(), "Describe."), ("qa", _red_square(), "Colour?")])
    assert skipped == {} and [a.text for a in answers] == ["a red square", "a red square"]
    assert [a.task for a in answers] == ["caption", "qa"] and all(a.seconds >= 0 and not a.error for a in answers)
    assert seen == [((8, 8), "Describe."), ((8, 8), "Colour?")]


def test_a_failing_call_is_an_answer_with_an_error_not_a_crash():
    def broken(image, prompt):
        raise RuntimeError("model exploded")

    answers, _ = multimodal.compare([multimodal.LocalBackend("broken", broken)], [("caption", _red_square(), "?")])
    assert answers[0].text == "" and answers[0].error == "RuntimeError: model exploded"


@pytest.mark.parametrize("backend", [multimodal.GeminiBackend(), multimodal.OpenAIBackend(),
                                     multimodal.OpenAIBackend(name="Llama (Together)", model="meta-llama/x",
                                                              base_url="https://api.together.xyz/v1",
                                                              key_variables=("TOGETHER_API_KEY",))],
                         ids=lambda b: b.name)
def test_without_a_key_a_backend_is_skipped_and_never_called(backend, monkeypatch):
    for variable in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY", "TOGETHER_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(backend, "ask", lambda *a: pytest.fail("a backend without a key was called"))
    answers, skipped = multimodal.compare([backend], [("caption", _red_square(), "Describe.")])
    assert answers == [] and "no API key" in skipped[backend.name]


def test_openai_backend_sends_the_image_inline_with_the_responses_api(monkeypatch):
    calls = {}

    class FakeResponses:
        def create(self, **kwargs):
            calls.update(kwargs)
            return types.SimpleNamespace(output_text="a red square")

    class FakeOpenAI:
        def __init__(self, api_key, base_url):
            calls["api_key"], calls["base_url"] = api_key, base_url
            self.responses = FakeResponses()

    monkeypatch.setitem(sys.modules, "openai", types.SimpleNamespace(OpenAI=FakeOpenAI))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    backend = multimodal.OpenAIBackend(model="gpt-test")
    assert backend.unavailable() is None
    assert backend.ask(_red_square(), "Describe.") == "a red square"
    content = calls["input"][0]["content"]
    assert calls["api_key"] == "sk-test" and calls["model"] == "gpt-test" and calls["base_url"] is None
    assert content[0] == {"type": "input_text", "text": "Describe."}
    assert content[1]["type"] == "input_image" and content[1]["image_url"].startswith("data:image/png;base64,")


def _fake_google_genai(monkeypatch, client_class):
    """Install a stand-in ``google.genai`` whose ``Client`` is ``client_class`` (no network), and a key."""
    part = types.SimpleNamespace(from_bytes=lambda data, mime_type: ("part", mime_type, data[:8]))
    genai = types.SimpleNamespace(Client=client_class, types=types.SimpleNamespace(Part=part))
    google = types.ModuleType("google")
    google.genai = genai
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.genai", genai)
    monkeypatch.setitem(sys.modules, "google.genai.types", genai.types)
    monkeypatch.setenv("GEMINI_API_KEY", "g-test")


def test_gemini_backend_sends_png_bytes(monkeypatch):
    calls = {}

    class FakeModels:
        def generate_content(self, model, contents):
            calls["model"], calls["contents"] = model, contents
            return types.SimpleNamespace(text="a red square")

    class FakeClient:
        def __init__(self, api_key):
            calls["api_key"] = api_key
            self.models = FakeModels()

    _fake_google_genai(monkeypatch, FakeClient)
    backend = multimodal.GeminiBackend(model="gemini-test")
    assert backend.ask(_red_square(), "Describe.") == "a red square"
    assert calls["api_key"] == "g-test" and calls["model"] == "gemini-test"
    assert calls["contents"][0] == ("part", "image/png", b"\x89PNG\r\n\x1a\n") and calls["contents"][1] == "Describe."


def test_a_missing_client_library_is_reported(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setitem(sys.modules, "openai", None)  # import fails
    assert "pip install openai" in multimodal.OpenAIBackend().unavailable()


def test_a_keyless_local_server_uses_chat_completions_and_one_client(monkeypatch):
    calls = {"clients": 0}

    class FakeCompletions:
        def create(self, **kwargs):
            calls.update(kwargs)
            return types.SimpleNamespace(choices=[types.SimpleNamespace(message=types.SimpleNamespace(content="red"))])

    class FakeOpenAI:
        def __init__(self, api_key, base_url):
            calls["clients"] += 1
            calls["api_key"], calls["base_url"] = api_key, base_url
            self.chat = types.SimpleNamespace(completions=FakeCompletions())

    monkeypatch.setitem(sys.modules, "openai", types.SimpleNamespace(OpenAI=FakeOpenAI))
    backend = multimodal.OpenAIBackend("llava", name="vLLM", base_url="http://127.0.0.1:8000/v1", key_variables=())
    assert backend.unavailable() is None
    assert backend.ask(_red_square(), "Colour?") == "red" and backend.ask(_red_square(), "Colour?") == "red"
    assert calls["clients"] == 1 and calls["base_url"] == "http://127.0.0.1:8000/v1"
    content = calls["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": "Colour?"}
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,")
    with pytest.raises(ValueError, match="local servers"):
        multimodal.OpenAIBackend(key_variables=())


def test_gemini_without_text_answers_an_empty_string(monkeypatch):
    class FakeClient:
        def __init__(self, api_key):
            self.models = types.SimpleNamespace(generate_content=lambda model, contents: types.SimpleNamespace(text=None))

    _fake_google_genai(monkeypatch, FakeClient)
    assert multimodal.GeminiBackend().ask(_red_square(), "Describe.") == ""


@pytest.fixture(scope="module")
def notebook_backends():
    """Chapter 07's GeminiBackend and OpenAIBackend, as its cells define them (their ``ask`` written out)."""
    from test_notebooks import ROOT, _code_cells, _load, _run_defining_cell

    path = ROOT / "notebooks" / "07_clip_and_multimodal.ipynb"
    sources = ["".join(cell["source"]) for cell in _code_cells(_load(path))]
    namespace = {"multimodal": multimodal, "__name__": "notebook_cells"}
    for name in ("GeminiBackend", "OpenAIBackend"):
        _run_defining_cell(sources, name, namespace, path, visited=set())
    return namespace["GeminiBackend"], namespace["OpenAIBackend"]


@pytest.mark.parametrize("base_url", [None, "http://127.0.0.1:8000/v1"], ids=["responses", "chat-completions"])
def test_the_notebooks_openai_backend_sends_what_course_utils_sends(notebook_backends, monkeypatch, base_url):
    class FakeOpenAI:
        def __init__(self, api_key, base_url):
            calls.append(("client", api_key, base_url))
            self.responses = types.SimpleNamespace(create=lambda **kw: calls.append(("responses", kw))
                                                   or types.SimpleNamespace(output_text="red"))
            message = types.SimpleNamespace(message=types.SimpleNamespace(content="red"))
            self.chat = types.SimpleNamespace(completions=types.SimpleNamespace(
                create=lambda **kw: calls.append(("chat", kw)) or types.SimpleNamespace(choices=[message])))

    monkeypatch.setitem(sys.modules, "openai", types.SimpleNamespace(OpenAI=FakeOpenAI))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    recorded = []
    for backend_class in (notebook_backends[1], multimodal.OpenAIBackend):
        calls = []
        backend = backend_class("model-x", base_url=base_url)
        answers = [backend.ask(_red_square(), "Colour?"), backend.ask(_red_square(), "Shape?")]
        recorded.append((answers, calls))
    assert recorded[0] == recorded[1]
    assert [kind for kind, *_ in recorded[0][1]] == ["client", *["responses" if base_url is None else "chat"] * 2]


def test_the_notebooks_gemini_backend_sends_what_course_utils_sends(notebook_backends, monkeypatch):
    calls = []

    class FakeClient:
        def __init__(self, api_key):
            calls.append(("client", api_key))
            self.models = types.SimpleNamespace(generate_content=lambda model, contents: calls.append(
                ("generate", model, contents)) or types.SimpleNamespace(text=None if len(calls) > 2 else "red"))

    _fake_google_genai(monkeypatch, FakeClient)
    recorded = []
    for backend_class in (notebook_backends[0], multimodal.GeminiBackend):
        calls.clear()
        backend = backend_class("gemini-test")
        answers = [backend.ask(_red_square(), "Colour?"), backend.ask(_red_square(), "Shape?")]
        recorded.append((answers, list(calls)))
    assert recorded[0] == recorded[1] and recorded[0][0] == ["red", ""]
    assert issubclass(notebook_backends[0], multimodal.GeminiBackend)
