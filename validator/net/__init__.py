"""Network library: the one HTTP client every network feature uses (see client.py)."""

from validator.net.client import Answer, BudgetExhausted, ClientSettings, HttpClient, NetworkError, no_answer

__all__ = ["Answer", "BudgetExhausted", "ClientSettings", "HttpClient", "NetworkError", "no_answer"]
