"""The ``keras-inspect`` command: argument handling, console output, the model summary and its
rendering, and model loading with its archive checks. It uses the library's public API and
imports no backend until its arguments are checked."""
