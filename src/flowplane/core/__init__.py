"""Pure orchestration logic: state types, transition rules and bookkeeping, with no I/O."""
