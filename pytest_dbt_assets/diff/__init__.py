"""What a change did: the working tree compared with a base revision, as plain data."""
