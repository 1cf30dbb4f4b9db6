package cli

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"

	"github.com/qlaunch/qlaunch/launcher"
	"github.com/qlaunch/qlaunch/topology"
)

// cmdServer runs the server: it dials the managers and accepts clients.
func cmdServer(ctx context.Context, e *env, args []string) error {
	tuneRoleGC(e)
	fs := newFlagSet(e, "server", "server [-p PORT] [-i IP] [--ranks N] [--address-file F] [--secret-file F] [--metrics ADDR] [-v] MANAGER_ADDR[:PORT]…")
	port := fs.Int("p", launcher.DefaultServerPort, "port clients connect to")
	ip := fs.String("i", "", "IP address to listen on (default: all)")
	ranks := fs.Int("ranks", 0, "ranks of the whole tree, the server included; ready once they joined (default: once every manager joined)")
	addrFile := fs.String("address-file", "", "write the server's address here once ready (default: $QLAUNCH_ADDRESS_FILE, else "+topology.DefaultAddressFile+")")
	metricsAddr := fs.String("metrics", "", metricsHelp)
	var rf roleFlags
	rf.add(fs, secretCreate)
	pos, err := parseInterleaved(e, fs, args)
	if err != nil {
		return err
	}
	if err := checkMetrics("server", *metricsAddr); err != nil {
		return err
	}
	var managers []string
	for _, a := range pos {
		if !strings.Contains(a, ":") {
			a += ":" + strconv.Itoa(launcher.DefaultManagerPort)
		}
		managers = append(managers, a)
	}
	node, files, err := rf.node(e, nil)
	if err != nil {
		return err
	}
	*addrFile = addressFile(e, *addrFile, nil)
	ln, err := net.Listen("tcp", net.JoinHostPort(*ip, strconv.Itoa(*port)))
	if err != nil {
		return err
	}
	node.Monitor = launcher.NewMonitor()
	stopMetrics, err := serveMetrics(ctx, *metricsAddr, node.Monitor, node.Logger)
	if err != nil {
		ln.Close()
		return err
	}
	defer stopMetrics()
	err = launcher.RunServer(ctx, launcher.ServerConfig{
		NodeConfig: node, Listener: ln, Managers: managers, ExpectRanks: *ranks,
		AddressFile: *addrFile, Owner: launcher.AddressOwner{Job: jobID(e), SecretFile: files.secret},
	})
	if errors.Is(err, launcher.ErrShutdown) {
		return nil
	}
	return err
}
