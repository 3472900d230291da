"""Hierarchical tasks with transition policies (Byun & Perrault, ICLR 2022): primitive skills chained into long
tasks, AIRL transition policies between them and a Double-DQN switch deciding when to hand over. See
docs/control_hierarchy.md."""
