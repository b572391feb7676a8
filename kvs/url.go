package kvs

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/skyline-go/skyline"
)

// ParseURL reads a destination URL of the form
//
//	kvs://REGION/STREAM[?backend=native|kvssink&create=1&fragment=2s&retry-bytes=N&retry-duration=2m&endpoint=URL]
//
// into a Config (a CLI's --out kvs://us-east-1/demo). REGION may be empty
// (kvs:///demo) to take the region from the AWS configuration.
func ParseURL(s string) (Config, error) {
	shown := skyline.RedactURL(s) // errors never quote a secret (an endpoint's password, a key=)
	u, err := url.Parse(s)
	if err != nil {
		return Config{}, configErr("URL %q: not a valid URL: %s", shown, skyline.URLProblem(err))
	}
	if u.Scheme != "kvs" {
		return Config{}, configErr("URL %q: want kvs://REGION/STREAM", shown)
	}
	stream := strings.Trim(u.Path, "/")
	if stream == "" || strings.Contains(stream, "/") {
		return Config{}, configErr("URL %q: want kvs://REGION/STREAM", shown)
	}
	cfg := Config{Region: u.Host, Stream: stream}
	for k, vs := range u.Query() {
		v := vs[len(vs)-1]
		switch k {
		case "backend":
			switch v {
			case "native":
				cfg.Backend = BackendNative
			case "kvssink":
				cfg.Backend = BackendKVSSink
			default:
				return Config{}, configErr("URL %q: backend %q: want native or kvssink", shown, v)
			}
		case "create":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Config{}, configErr("URL %q: create=%q: want true or false", shown, v)
			}
			cfg.CreateStream = b
		case "fragment", "retry-duration":
			d, err := time.ParseDuration(v)
			if err != nil {
				return Config{}, configErr("URL %q: %s=%q: %v", shown, k, v, err)
			}
			if k == "fragment" {
				cfg.FragmentDuration = d
			} else {
				cfg.RetryBufferDuration = d
			}
		case "retry-bytes":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return Config{}, configErr("URL %q: retry-bytes=%q: want a positive number", shown, v)
			}
			cfg.RetryBufferBytes = n
		case "endpoint":
			cfg.Endpoint = v
		default:
			return Config{}, configErr("URL %q: unknown option %q", shown, k)
		}
	}
	return cfg, nil
}
