"""SSH transport (paramiko): host resolution from ssh_config, host-key policy, connections."""
