"""What keras-inspect finds in a model, shown to people: the summary and the graph page.

- ``records``: the records a summary is made of, and how their values are written.
- ``summary``: ``summary(model)``, what the searches pick and every layer's roles and plugins.
- ``model_summary``: ``ModelSummary`` and its text and rich views.
- ``graph_page``: the graph page, one self-contained HTML file (``ModelSummary.to_html``);
  ``graph_data``: what it draws besides the rows (connections, groups, each search's path);
  ``assets``: its template, script and styles, and the vendored dagre layout engine.
"""
