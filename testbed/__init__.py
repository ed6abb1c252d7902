"""Throwaway infrastructure for the demo and the tests: a real PostgreSQL and a local S3."""
