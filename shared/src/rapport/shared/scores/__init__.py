"""Customer scores as pure functions of a profile, a moment and the models in use."""
