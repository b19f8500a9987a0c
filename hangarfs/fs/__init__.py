"""The filesystem front end: a view of a commit or staging area as files, and its FUSE adapter."""
