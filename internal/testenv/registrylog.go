package testenv

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"
)

// distribution/v3 logs through logrus' standard logger (its default logger
// is logrus.StandardLogger().WithField("go.version", ...), and nothing in its
// public API lets a caller replace it), so an in-process registry would print
// a line per request on stderr. installRegistryLogFilter wraps the standard
// logger's formatter once per process: entries carrying distribution's
// "go.version" field are taken out of the output; warnings and errors among
// them (except 404s: existence checks of unknown blobs and manifests are
// routine) go to the t.Log of the registry named by the entry's
// "http.request.host" field, the rest is dropped. All other logrus entries
// (e.g. containers/image debug output) are formatted as before.

var installRegistryLogFilterOnce sync.Once

func installRegistryLogFilter() {
	installRegistryLogFilterOnce.Do(func() {
		std := logrus.StandardLogger()
		std.SetFormatter(&registryLogFilter{next: std.Formatter})
	})
}

// registryLogFilter is the logrus.Formatter described above.
type registryLogFilter struct {
	next logrus.Formatter
}

// noisyRegistryLogFields are left out of the lines written to t.Log.
var noisyRegistryLogFields = map[string]bool{
	"go.version":                true,
	"instance.id":               true,
	"service":                   true,
	"http.request.id":           true,
	"http.request.host":         true,
	"http.request.remoteaddr":   true,
	"http.request.useragent":    true,
	"http.request.referer":      true,
	"http.request.contenttype":  true,
	"http.response.contenttype": true,
	"http.response.duration":    true,
}

// Format implements logrus.Formatter.
func (f *registryLogFilter) Format(e *logrus.Entry) ([]byte, error) {
	if _, fromRegistry := e.Data["go.version"]; !fromRegistry {
		return f.next.Format(e)
	}
	if e.Level > logrus.WarnLevel || e.Data["http.response.status"] == 404 {
		return nil, nil // info, debug, and routine "blob/manifest unknown" answers
	}
	host, _ := e.Data["http.request.host"].(string)
	r := liveRegistry(host)
	if r == nil {
		return nil, nil
	}
	keys := make([]string, 0, len(e.Data))
	for k := range e.Data {
		if !noisyRegistryLogFields[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "registry %s: %s: %s", r.Host, e.Level, e.Message)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%v", k, e.Data[k])
	}
	r.logf("%s", b.String())
	return nil, nil
}
