/** Webhook URLs that point at the server's own network, spelled every way a probe tries. */
export const INTERNAL_TARGETS = [
  "http://127.0.0.1:2375/containers/json",
  "http://localhost/",
  "http://app.localhost/",
  "http://0x7f.1/",
  "http://2130706433/",
  "http://017700000001/",
  "http://127.1/",
  "http://[::1]/",
  "http://[::ffff:127.0.0.1]/",
  "http://[0:0:0:0:0:ffff:7f00:1]/",
  "http://0.0.0.0/",
  "http://169.254.169.254/latest/meta-data/",
  "http://metadata.google.internal/computeMetadata/v1/",
  "http://10.0.0.1/",
  "http://172.17.0.1:2375/",
  "http://192.168.1.1/",
  "http://100.64.0.1/",
  "http://[fd00::1]/",
  "http://[fe80::1]/",
  "HTTP://127.0.0.1/"
]
