// envoy-check: `envoy --mode validate` for the parts a static bootstrap of the app's LB uses, from
// Envoy's own API module (github.com/envoyproxy/go-control-plane/envoy): the YAML is read as JSON
// into bootstrap.v3.Bootstrap with protojson (unknown fields and unknown @types fail), every
// message — including those packed in Any typed_config — is checked with its protoc-gen-validate
// rules (ValidateAll), and listeners' tcp_proxy clusters must exist. Exit 0: valid; 1: invalid
// (message on stderr); 2: usage or I/O error. Takes Envoy's own argv, so a plan's check command
// runs unchanged:
//
//	envoy-check --mode validate -c /etc/envoy/envoy.yaml
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	rawbufferv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/raw_buffer/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"
)

// Only the extensions the app's bootstrap may use; any other @type is refused, as an Envoy
// built without that extension would.
func resolver() (*protoregistry.Types, error) {
	r := new(protoregistry.Types)
	for _, m := range []proto.Message{
		&tcpproxyv3.TcpProxy{},
		&tlsv3.UpstreamTlsContext{},
		&rawbufferv3.RawBuffer{},
	} {
		if err := r.RegisterMessage(m.ProtoReflect().Type()); err != nil {
			return nil, err
		}
	}
	return r, nil
}

type validator interface{ ValidateAll() error }

func validate(m proto.Message, path string) error {
	if v, ok := m.(validator); ok {
		if err := v.ValidateAll(); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	return nil
}

// walkAny unpacks every Any below m (typed_config …) and validates it, recursively.
func walkAny(m protoreflect.Message, path string, r *protoregistry.Types) error {
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
			return true
		}
		visit := func(sub protoreflect.Message, p string) bool {
			if a, ok := sub.Interface().(*anypb.Any); ok {
				inner, e := anypb.UnmarshalNew(a, proto.UnmarshalOptions{Resolver: r})
				if e != nil {
					err = fmt.Errorf("%s: %w", p, e)
					return false
				}
				if e = validate(inner, p); e != nil {
					err = e
					return false
				}
				sub = inner.ProtoReflect()
			}
			if e := walkAny(sub, p, r); e != nil {
				err = e
				return false
			}
			return true
		}
		name := path + "." + string(fd.Name())
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				if !visit(l.Get(i).Message(), fmt.Sprintf("%s[%d]", name, i)) {
					return false
				}
			}
		case fd.IsMap():
			if fd.MapValue().Kind() == protoreflect.MessageKind {
				v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
					return visit(mv.Message(), fmt.Sprintf("%s[%v]", name, k.Interface()))
				})
			}
		default:
			return visit(v.Message(), name)
		}
		return err == nil
	})
	return err
}

// Cross-references Envoy resolves at start (cluster names), which field rules cannot express.
func references(b *bootstrapv3.Bootstrap, r *protoregistry.Types) error {
	clusters := map[string]bool{}
	for _, c := range b.GetStaticResources().GetClusters() {
		if clusters[c.GetName()] {
			return fmt.Errorf("duplicate cluster name %q", c.GetName())
		}
		clusters[c.GetName()] = true
	}
	ports := map[uint32]bool{}
	for _, l := range b.GetStaticResources().GetListeners() {
		if sa := l.GetAddress().GetSocketAddress(); sa != nil {
			if ports[sa.GetPortValue()] {
				return fmt.Errorf("listener %q: port %d used twice", l.GetName(), sa.GetPortValue())
			}
			ports[sa.GetPortValue()] = true
		}
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				tc := f.GetTypedConfig()
				if tc == nil {
					return fmt.Errorf("listener %q: filter %q has no typed_config", l.GetName(), f.GetName())
				}
				inner, err := anypb.UnmarshalNew(tc, proto.UnmarshalOptions{Resolver: r})
				if err != nil {
					return err
				}
				if tp, ok := inner.(*tcpproxyv3.TcpProxy); ok && !clusters[tp.GetCluster()] {
					return fmt.Errorf("listener %q: tcp_proxy names unknown cluster %q", l.GetName(), tp.GetCluster())
				}
			}
		}
	}
	return nil
}

func check(path string) error {
	text, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	js, err := yaml.YAMLToJSON(text)
	if err != nil {
		return fmt.Errorf("YAML: %w", err)
	}
	r, err := resolver()
	if err != nil {
		return err
	}
	var b bootstrapv3.Bootstrap
	if err := (protojson.UnmarshalOptions{Resolver: r}).Unmarshal(js, &b); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if err := validate(&b, "bootstrap"); err != nil {
		return err
	}
	if err := walkAny(b.ProtoReflect(), "bootstrap", r); err != nil {
		return err
	}
	return references(&b, r)
}

func main() {
	config := flag.String("c", "", "Envoy bootstrap file (YAML or JSON)")
	mode := flag.String("mode", "validate", "only validate (as envoy --mode validate)")
	flag.Parse()
	if *config == "" || *mode != "validate" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: envoy-check [--mode validate] -c <bootstrap.yaml>")
		os.Exit(2)
	}
	if err := check(*config); err != nil {
		var pe *os.PathError
		fmt.Fprintf(os.Stderr, "envoy-check: %s: %v\n", *config, err)
		if errors.As(err, &pe) {
			os.Exit(2)
		}
		os.Exit(1)
	}
	fmt.Printf("envoy-check: %s: OK\n", *config)
}
