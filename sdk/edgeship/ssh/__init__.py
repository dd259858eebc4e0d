"""SSH transport (paramiko): host resolution from ssh_config (hostconfig), host-key policy
(hostkeys), the SSH agent check (agent), connections (connection) and remote processes on
them (pipe)."""
