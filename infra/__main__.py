"""The Pulumi program (filled in by the infrastructure issue)."""
