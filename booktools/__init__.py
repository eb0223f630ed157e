"""booktools: what builds and guards the book, kept out of the learner's labkit.

- ``bookext``: the Sphinx/myst-nb extension (plotly figures drawn offline, a
  chapter that stored an error fails the build);
- ``check_notebooks``: every chapter is executed, listed and fit to publish;
  ``chapter_rules``: the checked-chapter standard (claims, exercises, sliders,
  axes, printed floats, asserts that cannot fail);
- ``execute_notebooks``: runs chapters in place, as they are committed;
- ``check_site``: the built book in headless chromium, offline.

Run them as modules: ``python -m booktools.check_notebooks``.
"""
