"""People log in with passwords and get tokens; integrators use API keys."""
