"""Reporters: pure functions of a RunResult. They return text; they never print or write files."""
