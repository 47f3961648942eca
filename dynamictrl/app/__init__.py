"""The web app (`dynamictrl app`): `session.py` is the back end (no Gradio), `gradio_app.py` the page (no model logic).

Nothing is imported here, so `import dynamictrl.app.session` works without Gradio installed.
"""
