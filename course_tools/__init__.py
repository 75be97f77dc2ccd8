"""Tools that run the course, for developers, teachers and CI; not part of the kit.

They live beside ``course_lib``, not in it, so a student's ``pip install`` on Colab gets
only what the notebooks import. Their dependencies (nbclient, nbconvert, selenium) are
in ``requirements-dev.txt``. Run them from the repository's root:

- ``python -m course_tools.run_course``: executes every notebook and writes
  ``outputs/index.html`` (module :mod:`course_tools.run_course`);
- :mod:`course_tools.browser_check`: opens that page in headless Chromium and checks
  that every audio player loads;
- :mod:`course_tools.kernel_messages`: a workaround for nbclient runs that stall on a
  kernel reply, used by ``run_course`` and by ``pytest --nbmake`` (root ``conftest.py``).
"""
