"""Project tooling run by hand or by tests, never by the server: today the README's protocol
coverage table (``python -m appserver.tools.coverage``).

Not the agent's tools (those are ``appserver.engine.tools``). Like the CLI, this package sits
above every layer and may import any of them; nothing in the package may import it.
"""
