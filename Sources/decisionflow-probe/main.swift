// decisionflow-probe FILE: reads an HDF5 file (a D4RL file, or a Minari dataset) completely,
// as `FileProbe` asks a child process to, so that a file that crashes libhdf5 crashes this
// process and not the program that asked. Its exit status says nothing about the file.
import RLData

if CommandLine.arguments.count == 2 {
    FileProbe.readEverything(CommandLine.arguments[1])
}
