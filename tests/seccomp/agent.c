/* Seccomp notify agent for ruse's tests: listens on a unix stream socket (argv[1]), receives
 * one message from the runtime (the container process state as JSON, the listener fd as
 * SCM_RIGHTS), writes the JSON to argv[2], then answers every notification with the errno
 * argv[3] until the container is gone. Exit status 0 when it answered at least once.
 * Built static (gcc -static) at test time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: agent SOCKET STATE_FILE ERRNO\n");
		return 2;
	}
	int answer = atoi(argv[3]);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	strncpy(addr.sun_path, argv[1], sizeof(addr.sun_path) - 1);
	unlink(argv[1]);
	if (bind(s, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(s, 1) < 0) {
		perror("agent: listen");
		return 2;
	}
	/* Tell the test we are listening. */
	printf("ready\n");
	fflush(stdout);
	int c = accept(s, NULL, NULL);
	if (c < 0) {
		perror("agent: accept");
		return 2;
	}
	char buf[8192];
	char cbuf[CMSG_SPACE(sizeof(int) * 4)];
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf - 1};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
	ssize_t n = recvmsg(c, &msg, 0);
	if (n <= 0) {
		perror("agent: recvmsg");
		return 2;
	}
	int fd = -1, nfds = 0;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			memcpy(&fd, CMSG_DATA(cm), sizeof fd);
		}
	FILE *f = fopen(argv[2], "w");
	if (!f) {
		perror("agent: state file");
		return 2;
	}
	fprintf(f, "{\"fds_received\":%d,\"message\":%.*s}\n", nfds, (int)n, buf);
	fclose(f);
	if (fd < 0)
		return 3;
	int answered = 0;
	for (;;) {
		struct seccomp_notif req;
		struct seccomp_notif_resp resp;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (!(p.revents & POLLIN))
			break; /* POLLHUP: the filter's last user is gone */
		memset(&req, 0, sizeof req);
		if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		memset(&resp, 0, sizeof resp);
		resp.id = req.id;
		resp.error = -answer;
		if (ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp) == 0)
			answered++;
	}
	return answered > 0 ? 0 : 4;
}
