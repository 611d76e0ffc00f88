"""SMS: providers behind one interface, the rules participants live with, and their choices."""
