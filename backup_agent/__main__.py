"""`python -m backup_agent` runs the same CLI as the `backup-agent` script."""

from backup_agent.cli import main

main()
