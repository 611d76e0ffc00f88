"""Events of the five kinds, their lifecycle and their recorded outcomes."""
