"""The WAL archive: the receiver's supervision, segment upload, the archive's object format."""
