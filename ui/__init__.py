"""The consumers of the public `qa` API that serve people and programs: the Gradio page (`ui.app`, `ui.chat`,
`ui.render`), its OpenAI-compatible HTTP API on the same port (`ui.openai_api`, `ui.openai_format`) and the MCP
server (`ui.mcp_server`). Importing `ui` imports none of Gradio, FastAPI or mcp; each module imports what it needs
(`pip install 'qa[ui]'`, `'qa[mcp]'`).
"""
