"""Small command-line tools in the runner image for shell commands of the templates (``python3 -m ...``)."""
