package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/skyline-go/skyline"
)

// secretsHelp is the part of the help that says how to keep secrets off the
// command line, where ps and /proc/PID/cmdline show them to every user.
const secretsHelp = `Secrets (stream keys, passwords, passphrases) need not be on the command line, where ps shows them: ` +
	`in --out and --pass, ${NAME} is replaced by the environment variable NAME and ${file:PATH} by the content ` +
	`of the file PATH (without its final newline); quote the value with single quotes so that the shell ` +
	`leaves it alone, e.g. --out 'rtmp://a.rtmp.youtube.com/live2/${YT_KEY}'. Substituted values are shown as ****. ` +
	`KVS credentials come from the standard AWS chain (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, ` +
	`the shared credentials file, roles).`

// expandSecrets replaces ${NAME} in a flag value by the environment
// variable NAME and ${file:PATH} by the content of the file PATH (one final
// newline removed); $${ is a literal ${. The values are returned as
// secrets, to be masked wherever the destination is shown. An unset or empty
// variable, an unreadable or empty file and an unclosed ${ are errors that
// name the variable or file, never a value.
func expandSecrets(flagName, v string) (string, []skyline.Secret, error) {
	if !strings.Contains(v, "${") {
		return v, nil, nil
	}
	var b strings.Builder
	var secrets []skyline.Secret
	for {
		i := strings.Index(v, "${")
		if i < 0 {
			b.WriteString(v)
			break
		}
		if i > 0 && v[i-1] == '$' { // $${: a literal ${
			b.WriteString(v[:i-1] + "${")
			v = v[i+2:]
			continue
		}
		b.WriteString(v[:i])
		end := strings.IndexByte(v[i:], '}')
		if end < 0 {
			return "", nil, fmt.Errorf("%s: ${ without its closing } (write ${NAME} or ${file:PATH}; $${ for a literal ${)", flagName)
		}
		ref := v[i+2 : i+end]
		v = v[i+end+1:]
		var val string
		if path, ok := strings.CutPrefix(ref, "file:"); ok {
			data, err := os.ReadFile(path)
			if err != nil {
				return "", nil, fmt.Errorf("%s: ${file:%s}: %w", flagName, path, err)
			}
			val = strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
			if val == "" {
				return "", nil, fmt.Errorf("%s: ${file:%s}: the file is empty", flagName, path)
			}
		} else {
			if ref == "" || strings.ContainsAny(ref, " \t=$") {
				return "", nil, fmt.Errorf("%s: ${%s}: want ${NAME} (an environment variable) or ${file:PATH}", flagName, ref)
			}
			var set bool
			if val, set = os.LookupEnv(ref); !set || val == "" {
				return "", nil, fmt.Errorf("%s: ${%s}: the environment variable %s is not set or empty", flagName, ref, ref)
			}
		}
		b.WriteString(val)
		secrets = append(secrets, skyline.NewSecret(val))
	}
	return b.String(), secrets, nil
}
