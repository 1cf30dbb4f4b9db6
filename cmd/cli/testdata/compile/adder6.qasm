// Cuccaro ripple-carry adder of two 2-bit numbers (carry in q[0], sum in b, carry out q[5])
OPENQASM 2.0;
include "qelib1.inc";
qreg q[6];
cx q[2],q[1];
cx q[2],q[0];
ccx q[0],q[1],q[2];
cx q[4],q[3];
cx q[4],q[2];
ccx q[2],q[3],q[4];
cx q[4],q[5];
ccx q[2],q[3],q[4];
cx q[4],q[2];
cx q[2],q[3];
ccx q[0],q[1],q[2];
cx q[2],q[0];
cx q[0],q[1];
