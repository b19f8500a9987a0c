"""Version control of tensor data: repositories, checkouts, columns, commits, branches."""
