"""The ``keras-inspect`` command: it uses the library's public API and its views
(:mod:`keras_inspect.views`), and imports no backend until its arguments are checked.

- ``main``: the command and its subcommands.
- ``console``: a backend's start-up noise kept off the terminal, and warnings shown escaped.
- ``loading``: resolving the MODEL argument; ``load_errors``: explaining why Keras could not load
  a file; ``archive``: checking a ``.keras`` archive before Keras reads it (``zip_records``:
  its end record and directory, read within bounds); ``declared``: what the weights and the
  config declare Keras will allocate, checked before it does.
"""
