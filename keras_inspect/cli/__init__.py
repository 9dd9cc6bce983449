"""The ``keras-inspect`` command: it uses the library's public API, and imports no backend until
its arguments are checked.

- ``main``: the command and its subcommands.
- ``console``: printable text, and a backend's start-up noise kept off the terminal.
- ``summary``: ``summary(model)`` and ``ModelSummary``; ``summary_render``: its text and rich views.
- ``graph_page``: the graph page, one self-contained HTML file (``ModelSummary.to_html``);
  ``graph_data``: what it draws besides the rows (connections, groups, each search's path);
  ``assets``: its template, script and styles, and the vendored dagre layout engine.
- ``loading``: resolving the MODEL argument; ``load_errors``: explaining why Keras could not load
  a file; ``archive``: checking a ``.keras`` archive before Keras reads it (``zip_records``:
  its end record and directory, read within bounds); ``declared``: what the weights and the
  config declare Keras will allocate, checked before it does.
"""
