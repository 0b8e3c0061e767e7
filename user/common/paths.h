/* SPDX-License-Identifier: MIT */
/*
 * The paths of a standard install (make install, the systemd unit,
 * docs/deployment.md), shared by hypermeshd and hmctl.
 */
#ifndef HM_PATHS_H
#define HM_PATHS_H

/* The control socket under systemd: RuntimeDirectory=hypermesh makes
 * /run/hypermesh and hypermeshd puts its socket there; hmctl looks there
 * when given no --socket and no $HM_CONTROL_SOCKET. */
#define HM_CONTROL_SOCKET_NAME "control.sock"
#define HM_DEFAULT_CONTROL_SOCKET "/run/hypermesh/" HM_CONTROL_SOCKET_NAME

/* The replica's configuration, as the unit starts it. */
#define HM_DEFAULT_CONFIG "/etc/hypermesh/hypermesh.yaml"

#endif /* HM_PATHS_H */
