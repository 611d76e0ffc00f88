"""Organizations: the bureau, its county offices, universities, labs and institutes."""
