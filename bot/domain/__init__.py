"""Pure core: the plan's meaning, wave states and transitions, policy, canonical hashing. No I/O."""
