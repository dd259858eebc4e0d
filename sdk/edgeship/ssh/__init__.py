"""SSH transport (paramiko): host resolution from ssh_config (hostconfig) after checking
host and user names as OpenSSH does (names), host-key policy and known_hosts (hostkeys), the
SSH agent check (agent), connections (connection) over a watched TCP socket whose failures
are put in words (transport), and remote processes on them (pipe)."""
