"""A call's conversation: the script runner and the voice session around it."""
