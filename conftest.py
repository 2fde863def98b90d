"""Root pytest configuration.

nbval starts coverage inside each notebook kernel whenever pytest-cov is active; with current
coverage releases that hangs the kernel start. The course measures coverage of ``course_utils`` with
its unit tests, so notebook kernels run without coverage.
"""

import os

import nbval.plugin


def _no_kernel_coverage(*args, **kwargs):
    return None


nbval.plugin.setup_coverage = _no_kernel_coverage
nbval.plugin.teardown_coverage = _no_kernel_coverage

# Every figure a notebook draws is checked for a title and axis labels (course_utils.viz.figure_problems): the
# chapter's last cell (results.record_results) fails when one lacks them. The kernels inherit this variable.
os.environ.setdefault("COURSE_CHECK_FIGURES", "1")
