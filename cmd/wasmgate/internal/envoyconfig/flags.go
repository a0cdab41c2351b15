package envoyconfig

import (
	"flag"
	"fmt"
	"strings"
)

// Register sets o's fields from flags of fs, the ones `wasmgate
// envoy-config` and the benchmark's `bench config` share: -wasm,
// -gateway-port, -admin-port, -upstream, -like, -unchecked, -no-access-log,
// -no-plugin, -route-header. Ports default to Keep.
func (o *Options) Register(fs *flag.FlagSet) {
	o.GatewayPort, o.AdminPort = Keep, Keep
	o.Upstreams, o.Like = map[string]string{}, map[string]string{}
	fs.StringVar(&o.Wasm, "wasm", "", "the plugin `module` Envoy loads (default: the template's)")
	fs.IntVar(&o.GatewayPort, "gateway-port", Keep, "the listener's `port`, 0 for any (default: the template's)")
	fs.IntVar(&o.AdminPort, "admin-port", Keep, "the admin interface's `port`, 0 for any (default: the template's)")
	fs.Var(pairs{o.Upstreams, "CLUSTER=HOST:PORT"}, "upstream",
		"`CLUSTER=HOST:PORT`: the cluster's one endpoint; a cluster the template lacks is added (repeatable)")
	fs.Var(pairs{o.Like, "CLUSTER=TEMPLATE_CLUSTER"}, "like",
		"`CLUSTER=TEMPLATE_CLUSTER`: an added cluster copies that one's settings (default "+DefaultCluster+"; repeatable)")
	fs.BoolVar(&o.Unchecked, "unchecked", false, "put a -policy the plugin refuses in all the same (to see how Envoy refuses it)")
	fs.BoolVar(&o.NoAccessLog, "no-access-log", false, "remove the access log")
	fs.BoolVar(&o.NoPlugin, "no-plugin", false, "remove the Wasm filter (the router alone)")
	fs.BoolVar(&o.RouteHeader, "route-header", false, "add "+RouteHeader+" (the policy route that matched) to every response")
}

// pairs collects repeated NAME=VALUE flags.
type pairs struct {
	m    map[string]string
	want string // what the flag takes, for the error
}

func (p pairs) String() string { return "" }

func (p pairs) Set(s string) error {
	name, v, ok := strings.Cut(s, "=")
	if !ok || name == "" || v == "" {
		return fmt.Errorf("%q: want %s", s, p.want)
	}
	p.m[name] = v
	return nil
}
