"""The teacher's task names and spec forms, importable at no cost (the CLI's `--help` needs only these)."""

TASKS = ("score", "correct", "judge")
SPEC_HELP = (
    "openai:MODEL, anthropic:MODEL, openai-compatible:URL#MODEL, hf:PATH_OR_HUB_ID, reference, "
    "reference:lexical"
)
