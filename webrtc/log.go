package webrtc

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// pionLogs routes pion's logs to slog one level down (pion warns about
// benign things such as a viewer closing): its errors as warnings, its
// warnings as info, its info and debug messages at debug level, its trace
// dropped.
// pion never logs the server's credentials; TURN credentials are not logged
// by pion either below trace level.
type pionLogs struct{ log *slog.Logger }

func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{f.log.With(slog.String("pion", scope))}
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) at(level slog.Level, msg string) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, msg)
	}
}

func (l pionLogger) atf(level slog.Level, format string, args ...any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (pionLogger) Trace(string)                     {}
func (pionLogger) Tracef(string, ...any)            {}
func (l pionLogger) Debug(msg string)               { l.at(slog.LevelDebug, msg) }
func (l pionLogger) Debugf(format string, a ...any) { l.atf(slog.LevelDebug, format, a...) }
func (l pionLogger) Info(msg string)                { l.at(slog.LevelDebug, msg) }
func (l pionLogger) Infof(format string, a ...any)  { l.atf(slog.LevelDebug, format, a...) }
func (l pionLogger) Warn(msg string)                { l.at(slog.LevelInfo, msg) }
func (l pionLogger) Warnf(format string, a ...any)  { l.atf(slog.LevelInfo, format, a...) }
func (l pionLogger) Error(msg string)               { l.at(slog.LevelWarn, msg) }
func (l pionLogger) Errorf(format string, a ...any) { l.atf(slog.LevelWarn, format, a...) }
