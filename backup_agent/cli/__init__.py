from backup_agent.cli.app import app

__all__ = ["app"]
