"""The Gradio web page over the public `qa` API: `ui.app.build_app(assistant)` builds it, `ui.app.main()` serves it.

Importing `ui` does not import Gradio; `ui.app` does (install it with `pip install 'qa[ui]'`).
"""
