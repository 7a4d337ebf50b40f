"""The SDK: flows, tasks, states, futures, task runners, run context, logging and runtime information."""
