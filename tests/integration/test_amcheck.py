"""pg_amcheck over a restored cluster runs with the agent's session options: a role's or a
database's own settings there cannot turn event triggers back on for its connections."""

from __future__ import annotations

import subprocess

from backup_agent.physical.amcheck import PASSED, amcheck
from backup_agent.physical.server import PrivateServer
from testbed.pitr import owned_directory
from testbed.postgres import running_server


def test_a_login_trigger_re_enabled_by_a_role_setting_does_not_run_for_amcheck() -> None:
    with running_server() as server:
        marks = owned_directory(server, "marks")
        server.psql("postgres", f"""
            CREATE DATABASE shop;
            ALTER ROLE "{server.user}" IN DATABASE shop SET event_triggers = on;""")
        server.psql("shop", f"""
            CREATE FUNCTION public.on_login() RETURNS event_trigger LANGUAGE plpgsql AS $$
            BEGIN
              EXECUTE format('COPY (SELECT 1) TO PROGRAM %L',
                             'touch {marks}/' || pg_backend_pid());
            END $$;
            CREATE EVENT TRIGGER on_login ON login EXECUTE FUNCTION public.on_login();""")
        subprocess.run([str(server.bin_directory / "pg_ctl"), "-D", str(server.data_directory),
                        "-m", "fast", "-w", "stop"], user=server.system_user, check=True,
                       capture_output=True, cwd="/")
        owner = (server.data_directory.stat().st_uid, server.data_directory.stat().st_gid)
        with PrivateServer(server.bin_directory, server.data_directory, {},
                           owner=owner) as private:
            private.wait_until_ready()
            verdict = amcheck(private)
            private.stop()
        assert verdict == PASSED, verdict
        assert not list(marks.iterdir()), "the cluster's login trigger ran for pg_amcheck"
