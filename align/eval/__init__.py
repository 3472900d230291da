"""Evaluation: answer accuracy, LLM-judge win rate and rationale quality."""
