"""The teacher's task names and spec forms, importable at no cost (the CLI's `--help` needs only these)."""

TASKS = ("score", "correct", "judge")
SPEC_HELP = (
    "openai:MODEL, anthropic:MODEL, openai-compatible:URL#MODEL, hf:PATH_OR_HUB_ID, reference, "
    "reference:lexical"
)
BACKENDS = ("openai", "anthropic", "openai-compatible", "hf", "reference")
REFERENCE_SIMILARITIES = ("embedding", "lexical")


def spec_problem(spec: str) -> str | None:
    """What is wrong with a teacher spec's form (unknown backend, no model, a malformed URL#MODEL), or None;
    checked without building the backend (no SDK import, no network)."""
    import difflib

    kind, _, rest = str(spec).partition(":")
    if kind not in BACKENDS:
        close = difflib.get_close_matches(kind, BACKENDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown teacher backend {kind!r} in spec {spec!r}{hint}; expected one of: {SPEC_HELP}"
    if kind == "reference":
        if rest and rest not in REFERENCE_SIMILARITIES:
            return f"teacher spec {spec!r}: the reference teacher's similarity is 'embedding' or 'lexical'"
        return None
    if not rest:
        return f"teacher spec {spec!r} names no model; expected one of: {SPEC_HELP}"
    if kind == "openai-compatible":
        url, sep, model = rest.rpartition("#")
        if not sep or not url or not model:
            return f"teacher spec {spec!r}: expected openai-compatible:URL#MODEL"
    return None
