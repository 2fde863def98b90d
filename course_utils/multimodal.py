"""One small interface for asking vision-language models about an image: chapter 07's comparison lab.

Each backend answers ``ask(image, prompt) -> str``. :class:`LocalBackend` wraps any Python callable (the
chapter's tiny captioner) and runs offline. :class:`GeminiBackend` and :class:`OpenAIBackend` (which also
speaks to OpenAI-compatible servers for open models: vLLM, Ollama, Together, …) are used only when their
API key is set; without a key, :meth:`unavailable` says why and no network call is ever made.
:func:`compare` runs every usable backend on every task and times each call.
"""

from __future__ import annotations

import base64
import io
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image


def to_pil(image) -> Image.Image:
    """A PIL image from a PIL image, an H×W×3 uint8 array or a 3×H×W float tensor in [0, 1]."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    array = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if array.ndim == 3 and array.shape[0] == 3 and array.shape[-1] != 3:
        array = array.transpose(1, 2, 0)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0, 1) * 255).round().astype(np.uint8)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"expected an RGB image (H×W×3 or 3×H×W), got shape {array.shape}")
    return Image.fromarray(array)


def png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    to_pil(image).save(buffer, format="PNG")
    return buffer.getvalue()


def data_url(image) -> str:
    """The image as a ``data:image/png;base64,…`` URL, the form the OpenAI APIs accept inline."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


class Backend:
    """A vision-language model behind ``ask(image, prompt) -> str``."""

    name = "backend"
    model = ""

    def unavailable(self) -> str | None:
        """Why this backend cannot run here (None when it can)."""
        return None

    def ask(self, image, prompt: str) -> str:
        raise NotImplementedError


class LocalBackend(Backend):
    """A local model: ``answer(image, prompt) -> str`` runs in this process, offline."""

    def __init__(self, name: str, answer: Callable[[Image.Image, str], str], model: str = "local"):
        self.name, self.model, self._answer = name, model, answer

    def ask(self, image, prompt: str) -> str:
        return self._answer(to_pil(image), prompt)


class _KeyedBackend(Backend):
    key_variables: tuple[str, ...] = ()
    package = ""

    def _key(self) -> str | None:
        return next((os.environ[v] for v in self.key_variables if os.environ.get(v)), None)

    def unavailable(self) -> str | None:
        if self.key_variables and self._key() is None:
            return f"no API key: set {' or '.join(self.key_variables)} to use {self.name}"
        try:
            __import__(self.package)
        except ImportError:
            return f"the client library is missing: pip install {self.package_pip}"
        return None


class GeminiBackend(_KeyedBackend):
    """Google's Gemini through the ``google-genai`` SDK (``genai.Client().models.generate_content``)."""

    key_variables = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    package, package_pip = "google.genai", "google-genai"

    def __init__(self, model: str = "gemini-2.5-flash"):
        self.name, self.model, self._client = "Gemini", model, None

    def ask(self, image, prompt: str) -> str:
        from google import genai
        from google.genai import types

        if self._client is None:  # one client per backend: timed calls should not pay for a new connection
            self._client = genai.Client(api_key=self._key())
        picture = types.Part.from_bytes(data=png_bytes(image), mime_type="image/png")
        return self._client.models.generate_content(model=self.model, contents=[picture, prompt]).text or ""


class OpenAIBackend(_KeyedBackend):
    """OpenAI's Responses API, or any OpenAI-compatible chat server when ``base_url`` is given.

    A local server that needs no key (vLLM, Ollama on localhost) takes ``key_variables=()``.
    """

    package, package_pip = "openai", "openai"

    def __init__(self, model: str = "gpt-4.1-mini", name: str = "OpenAI", base_url: str | None = None,
                 key_variables: tuple[str, ...] = ("OPENAI_API_KEY",)):
        if not key_variables and base_url is None:
            raise ValueError("OpenAI's own API needs a key; key_variables=() is for local servers (give base_url)")
        self.name, self.model, self.base_url, self.key_variables = name, model, base_url, key_variables
        self._client = None

    def ask(self, image, prompt: str) -> str:
        from openai import OpenAI

        if self._client is None:  # one client per backend: timed calls should not pay for a new connection
            self._client = OpenAI(api_key=self._key() or "no-key-needed", base_url=self.base_url)
        client = self._client
        if self.base_url is None:
            response = client.responses.create(model=self.model, input=[{"role": "user", "content": [
                {"type": "input_text", "text": prompt}, {"type": "input_image", "image_url": data_url(image)}]}])
            return response.output_text
        # open-model servers implement the older chat-completions format
        response = client.chat.completions.create(model=self.model, messages=[{"role": "user", "content": [
            {"type": "text", "text": prompt}, {"type": "image_url", "image_url": {"url": data_url(image)}}]}])
        return response.choices[0].message.content


@dataclass
class Answer:
    backend: str
    model: str
    task: str
    text: str
    seconds: float
    error: str = ""


def compare(backends: Sequence[Backend], tasks: Sequence[tuple[str, object, str]]) -> tuple[list[Answer], dict[str, str]]:
    """Ask every usable backend every ``(task name, image, prompt)``; time each call, keep errors as answers.

    Returns the answers and, per skipped backend, the reason it was skipped.
    """
    answers, skipped = [], {}
    for backend in backends:
        reason = backend.unavailable()
        if reason:
            skipped[backend.name] = reason
            continue
        for task, image, prompt in tasks:
            started = time.perf_counter()
            try:
                text, error = str(backend.ask(image, prompt)).strip(), ""
            except Exception as failure:  # noqa: BLE001 - one failed call must not end the comparison
                text, error = "", f"{type(failure).__name__}: {failure}"
            answers.append(Answer(backend.name, backend.model, task, text, time.perf_counter() - started, error))
    return answers, skipped
