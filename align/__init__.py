"""ares-align: align language and vision-language models with AI feedback (ARES, SPPO, DLPO)."""

__version__ = "0.1.0"
