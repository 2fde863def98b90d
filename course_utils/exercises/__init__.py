"""Per-chapter exercise checkers (``check_…`` functions) built on :mod:`course_utils.checks`."""
