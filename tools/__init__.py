"""Maintainer tools outside the course package (``course_utils``).

``publish`` builds the slides and the website.
"""
